# depot.clearing: clear one business day of the station's records (CLEARING.md).
# SPDX-License-Identifier: MIT
#
#   summary = clear_day(db, "2026-03-02", keyservice, out_dir, city="2900")
# Every normal and recovered record of the day has its TAC checked by the key service (the
# depot holds no issuer key) and a verdict stored in clearing_results; every gray record is
# matched to its final record, proved void, resolved from the card's later transactions, or
# kept open (gray_records); anomalies get a reason code (depot.anomalies.REASONS) and the
# records behind them (anomalies); the export files per destination and issuer, the error
# file, the gray-record file and the settlement summary go to out_dir. Clearing a day again
# gives the same files and adds no anomaly twice (each has a dedupe key).
#
# The database is depot.db's open_db(...) object (query/execute/executemany/transaction/
# ensure_schema), SQLite or PostgreSQL. Records are read as raw bytes and
# decoded here with a decoder derived from record_host.RECORD_FIELDS (the format registry),
# so the depot's own columns never decide money.
import binascii
import calendar
import collections
import csv
import datetime as _dt
import hashlib
import io
import json
import os
import struct
import time

from depot import anomalies as A
from validator.storage import record_host as RH

DAY_CUTOFF_H = 4  # [INF] a business day runs 04:00 .. 04:00 (night buses belong to the day)
CHAIN_LOOKBACK_DAYS = 7  # earlier records read as context for ATC/balance/gray checks
FORMAT_VERSION = 1  # of the export files (CLEARING.md "Export files")
NATIONAL = "national"  # the T-Union national clearing centre
LOCAL = "local"  # the city's own clearing (its card company pays its operator)
PAID = ("normal", "recovered")
GRAY_OR_PAID = ("gray",) + PAID

SCHEMA = [
    # step 1
    """CREATE TABLE IF NOT EXISTS clearing_results (
        device_id BIGINT NOT NULL, seq BIGINT NOT NULL, cleared_day TEXT NOT NULL,
        status TEXT, card TEXT, issuer TEXT, amount BIGINT, tac_ok INTEGER,
        verdict TEXT NOT NULL, reason TEXT, destination TEXT, export_file TEXT,
        PRIMARY KEY (device_id, seq))""",
    "CREATE INDEX IF NOT EXISTS clearing_results_day ON clearing_results (cleared_day)",
    """CREATE TABLE IF NOT EXISTS anomalies (
        id BIGINT PRIMARY KEY, akey TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        reason TEXT NOT NULL, device_id BIGINT, card TEXT, detail TEXT, records TEXT,
        cleared_day TEXT, created TEXT, status TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS anomalies_card ON anomalies (card)",
    """CREATE TABLE IF NOT EXISTS gray_records (
        device_id BIGINT NOT NULL, seq BIGINT NOT NULL, card TEXT, atc BIGINT,
        amount BIGINT, balance_before BIGINT, balance_after BIGINT, datetime TEXT,
        state TEXT NOT NULL, resolution TEXT, matched_device BIGINT, matched_seq BIGINT,
        detail TEXT, first_day TEXT, resolved_day TEXT, PRIMARY KEY (device_id, seq))""",
    """CREATE TABLE IF NOT EXISTS blacklist_proposals (
        id BIGINT PRIMARY KEY, card TEXT NOT NULL, reason TEXT, anomaly_ids TEXT,
        state TEXT NOT NULL, created TEXT, approved_by TEXT, decided TEXT, version BIGINT)""",
    """CREATE TABLE IF NOT EXISTS clearing_days (
        day TEXT PRIMARY KEY, created TEXT, summary TEXT)""",
]


class ClearingError(Exception):
    pass


# -- the database --------------------------------------------------------------------------
def _tuples(rows):
    return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in rows]


def store(db):
    """The database as clearing uses it (a depot.db.open_db object)."""
    if hasattr(db, "ensure_schema"):
        return db
    raise ClearingError("not a depot database: %r" % (db,))


def ensure_schema(db):
    s = store(db)
    s.ensure_schema("clearing", SCHEMA)
    return s


def _raw_column(s):
    if s.kind == "sqlite":
        cols = [r[1] for r in _tuples(s.query("PRAGMA table_info(records)"))]
    else:
        cols = [r[0] for r in _tuples(s.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
            ("records",)))]
    for c in ("raw", "data", "image", "record"):
        if c in cols:
            return c, ("received" if "received" in cols else "NULL")
    raise ClearingError("records table has no raw record column (have %s)" % cols)


def iter_raw(s, batch=50000):
    """(device_id int, seq, raw bytes, received epoch or None) for every stored record."""
    raw, rec = _raw_column(s)
    last = (-1, -1)
    while True:  # keyset pagination: bounded memory on a million-record day
        rows = _tuples(s.query(
            "SELECT device_id, seq, %s, %s FROM records WHERE (device_id, seq) > (?, ?) "
            "ORDER BY device_id, seq LIMIT %d" % (raw, rec, batch), last))
        for dev, seq, data, received in rows:
            if isinstance(dev, str):
                dev = int(dev, 16)
            yield dev, seq, bytes(data), received
        if len(rows) < batch:
            return
        last = (rows[-1][0], rows[-1][1])
        if isinstance(last[0], str):
            last = (int(last[0], 16), last[1])


def _devices(s):
    if hasattr(s, "devices"):
        try:
            return [d if isinstance(d, dict) else dict(d) for d in s.devices()]
        except (TypeError, ValueError):
            pass
    return []


# -- decoding (derived from the registry's field list) ---------------------------------------
def _make_decoder(only=None):
    """A struct-based decoder of RECORD_FIELDS (all columns, or those in `only`)."""
    fmt = [">"]
    post = []
    pos = 0
    for col, off, size, kind, codes in RH.RECORD_FIELDS:
        if off > pos:
            fmt.append("%dx" % (off - pos))
        pos = off + size
        if not col or kind == "none" or (only is not None and col not in only):
            fmt.append("%dx" % size)
            continue
        fmt.append({"u8": "B", "u16": "H", "u32": "I", "x8": "B", "enum8": "B",
                    "flags8": "B"}.get(kind, "%ds" % size))
        post.append((col, kind, dict((v, n) for n, v in codes) if kind == "enum8" else codes))
    st = struct.Struct("".join(fmt))
    cols = tuple(c for c, _, _ in post)
    x8 = tuple("%02x" % i for i in range(256))
    hexes = tuple(c for c, k, _ in post if k in ("hex", "bcd"))
    x8s = tuple(c for c, k, _ in post if k == "x8")
    enums = tuple((c, codes) for c, k, codes in post if k == "enum8")
    flags = tuple((c, codes) for c, k, codes in post if k == "flags8")

    def decode(buf):
        out = dict(zip(cols, st.unpack_from(buf), strict=True))  # ints as they are
        for c in hexes:
            out[c] = out[c].hex()
        for c in x8s:
            out[c] = x8[out[c]]
        for c, codes in enums:
            v = out[c]
            out[c] = codes.get(v) or "%s_%d" % (c, v)
        for c, codes in flags:
            v = out[c]
            for name, bit in codes:
                out[name] = 1 if v & bit else 0
        return out

    return decode


decode = _make_decoder()  # == record_host.decode (tests/host/test_clearing.py proves it)
# what verification and the checks read; the export decodes the whole record again
LITE_FIELDS = ("status", "card_serial", "issuer_id", "txn_type", "alg_id", "amount",
               "balance_before", "balance_after", "atc", "terminal_no", "ttsn", "datetime",
               "tac", "ref_seq", "psam_slot", "txflags", "void_seq", "card_kind", "m1_mac")
decode_lite = _make_decoder(LITE_FIELDS)
_DAY_SECS = {}


def _bcd_secs(h):
    """'YYYYMMDDhhmmss' -> naive seconds (device local time), None when not a time."""
    try:
        d = _DAY_SECS.get(h[0:8])
        if d is None:
            if len(_DAY_SECS) > 4096:
                _DAY_SECS.clear()
            d = _DAY_SECS[h[0:8]] = calendar.timegm(
                _dt.datetime.strptime(h[0:8], "%Y%m%d").timetuple())
        hh, mm, ss = int(h[8:10]), int(h[10:12]), int(h[12:14])
    except ValueError:
        return None
    if hh > 23 or mm > 59 or ss > 59 or len(h) != 14:
        return None
    return d + hh * 3600 + mm * 60 + ss


def _bcd_of(dt):
    return bytes.fromhex(dt.strftime("%Y%m%d%H%M%S"))


def _day_bounds(day):
    try:
        d = _dt.datetime.strptime(day, "%Y-%m-%d")
    except (TypeError, ValueError):
        raise ClearingError("day: YYYY-MM-DD, not %r" % (day,)) from None
    lo = d + _dt.timedelta(hours=DAY_CUTOFF_H)
    return lo, lo + _dt.timedelta(days=1)


def _now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def destination(rec, city):
    """LOCAL for the city's own cards (local-issuer PSAM slot, or a T-Union card issued in
    this city), NATIONAL for other cities' T-Union cards."""
    if rec.get("psam_slot") == 1 or rec["issuer_id"][4:8] == city:
        return LOCAL
    return NATIONAL


# -- the day ---------------------------------------------------------------------------------
def clear_day(db, day, keyservice, out_dir, city="2900", operator=None, now=None,
              lookback_days=CHAIN_LOOKBACK_DAYS, not_synced_days=A.NOT_SYNCED_DAYS,
              write_files=True):
    """Clear business day `day` (YYYY-MM-DD); -> summary dict (also clearing_days.summary)."""
    s = ensure_schema(db)
    operator = operator or "operator-%s" % city
    now = time.time() if now is None else now
    lo, hi = _day_bounds(day)
    lo_b, hi_b = _bcd_of(lo), _bcd_of(hi)
    ctx_b = _bcd_of(lo - _dt.timedelta(days=lookback_days))
    t0 = time.perf_counter()

    known_corrupt = {(d, q) for d, q, day_ in _tuples(s.query(
        "SELECT device_id, seq, cleared_day FROM clearing_results WHERE verdict = ?",
        ("corrupt",))) if day_ != day}
    open_grays = {(r[0], r[1]): r for r in _tuples(s.query(
        "SELECT device_id, seq, card, atc, amount, balance_before, balance_after, datetime, "
        "first_day FROM gray_records WHERE state = ?", ("open",)))}

    # 1. scan: corrupt records, device seqs, decoded records of the window
    corrupt, seqs, window = [], collections.defaultdict(list), []
    n_stored = 0
    for dev, seq, raw, received in iter_raw(s):
        n_stored += 1
        seqs[dev].append(seq)
        why = None
        if len(raw) != RH.REC_SIZE or raw[0:4] != RH.REC_COMMIT or raw[4] != RH.REC_VERSION:
            why = "CORRUPT_FORMAT"
        elif not RH.crc_ok(raw):
            why = "CORRUPT_CRC"
        if why:
            if (dev, seq) not in known_corrupt:
                corrupt.append((dev, seq, raw, why))
            continue
        dtb = raw[RH.O_DATETIME:RH.O_DATETIME + 7]
        if dtb < ctx_b:
            continue
        r = decode_lite(raw)
        r["_dev"], r["_seq"], r["_raw"], r["_received"] = dev, seq, raw, received
        r["_in_day"] = lo_b <= dtb < hi_b
        r["_t"] = _bcd_secs(r["datetime"])
        if r["_t"] is None:
            corrupt.append((dev, seq, raw, "CORRUPT_FORMAT"))
            continue
        window.append(r)
    t_scan = time.perf_counter()

    day_recs = [r for r in window if r["_in_day"]]
    cards = {r["card_serial"] for r in day_recs} | {g[2] for g in open_grays.values()}
    by_card = collections.defaultdict(list)
    by_dev = collections.defaultdict(list)
    for r in window:
        if r["card_serial"] in cards:
            by_card[r["card_serial"]].append(r)
        by_dev[r["_dev"]].append(r)
    for lst in by_card.values():
        lst.sort(key=lambda r: (r["_t"], r["atc"], r["_dev"], r["_seq"]))

    # 2. TAC of every paid record of the day, through the key service
    paid = [r for r in day_recs if r["status"] in PAID]
    cpu = [r for r in paid if r.get("card_kind") != RH.KIND_M1]
    for r, (ok, why) in zip(cpu, keyservice.verify_batch(cpu), strict=True):
        r["_tac_ok"], r["_tac_why"] = ok, why
    # M1 purse records carry no TAC: the local PSAM's M1_MAC stands for it (m1/FORMAT.md
    # §5), checked by the key service with the same reason codes; they clear to the local
    # operator (PSAM slot 1, destination())
    vm = getattr(keyservice, "verify_m1", None)
    for r in paid:
        if r.get("card_kind") == RH.KIND_M1:
            r["_tac_ok"], r["_tac_why"] = vm(r) if vm is not None else (None, "TAC_NO_KEY")
    t_tac = time.perf_counter()

    found = []  # Anomaly tuples
    for r in paid:
        if r["_tac_ok"] is not True:
            found.append(A.Anomaly(r["_tac_why"], r["_dev"], r["card_serial"],
                                   "TAC %s, amount %d" % (r["tac"], r["amount"]),
                                   [(r["_dev"], r["_seq"])]))
        found.extend(A.record_flags(r))

    # 3. gray records: final record, void proof, card chain, or open
    grays = _resolve_grays(window, by_card, open_grays, day)

    # 4. per-card chains and two-vehicle check
    for card, lst in by_card.items():
        timeline = [r for r in lst if r["status"] in PAID or
                    (r["status"] == "gray" and grays.get((r["_dev"], r["_seq"]), {})
                     .get("resolution") == "debited")]
        found.extend(A.card_chain(timeline))
        found.extend(A.two_vehicles([r for r in lst if r["status"] != "gray"]))

    # 5. devices: sequence gaps, clock, sync age
    for dev, lst in seqs.items():
        lst.sort()
        found.extend(A.seq_gaps(dev, lst))
    for dev, lst in by_dev.items():
        lst.sort(key=lambda r: r["_seq"])
        found.extend(A.clock_back(dev, lst))
        for r in lst:
            if r["_in_day"] and r["_received"]:
                rt = calendar.timegm(time.localtime(float(r["_received"])))
                if r["_t"] > rt + A.CLOCK_TOLERANCE_S:
                    found.append(A.Anomaly("CLOCK_AHEAD", dev, r["card_serial"],
                                           "record at %s received %s (local)" % (
                                               r["datetime"], time.strftime(
                                                   "%Y%m%d%H%M%S", time.gmtime(rt))),
                                           [(dev, r["_seq"])]))
                    break  # one per device and day is enough to act on
    for d in _devices(s):
        found.extend(_device_checks(d, now, not_synced_days))
    for dev, seq, _raw, why in corrupt:
        found.append(A.Anomaly(why, dev, "", "stored record %08X:%d, %d bytes"
                               % (dev, seq, len(_raw)), [(dev, seq)]))
    t_anom = time.perf_counter()

    # 6. verdicts, files, database
    results = _verdicts(day_recs, corrupt, grays, city, day)
    new_anoms = _store(s, day, found, results, grays)
    day_anoms = _day_anomalies(s, day, found)
    files = write_exports(out_dir, day, city, operator, day_recs, results, day_anoms, grays,
                          corrupt) if write_files else {}
    t_out = time.perf_counter()

    verdicts = collections.Counter(v[0] for v in results.values())
    reasons = collections.Counter(a.reason for a in found)
    gstates = collections.Counter(g["state"] for g in grays.values())
    gres = collections.Counter(g["resolution"] or "open" for g in grays.values())
    summary = {
        "day": day, "city": city, "operator": operator, "key_service": keyservice.describe(),
        "records_stored": n_stored, "records_in_day": len(day_recs), "corrupt": len(corrupt),
        "paid_records": len(paid),
        "tac_verified": sum(1 for r in paid if r["_tac_ok"] is True),
        "tac_failed": sum(1 for r in paid if r["_tac_ok"] is False),
        "tac_unverified": sum(1 for r in paid if r["_tac_ok"] is None),
        "verdicts": dict(verdicts), "gray_states": dict(gstates),
        "gray_resolutions": dict(gres), "anomalies": dict(reasons),
        "anomalies_new": new_anoms, "files": files,
        "cleared_fen": sum(r["amount"] for r in paid if r["_tac_ok"] is True),
        "seconds": {"scan": round(t_scan - t0, 3), "tac": round(t_tac - t_scan, 3),
                    "classify": round(t_anom - t_tac, 3),
                    "store_export": round(t_out - t_anom, 3)},
    }
    if files.get("settlement"):
        with open(files["settlement"]) as f:
            summary["settlement"] = json.load(f)["totals"]
    with s.transaction():
        s.execute("DELETE FROM clearing_days WHERE day = ?", (day,))
        s.execute("INSERT INTO clearing_days (day, created, summary) VALUES (?, ?, ?)",
                  (day, _now_iso(), json.dumps(summary, sort_keys=True)))
    return summary


def _device_checks(d, now, days):
    out = []
    dev = d.get("device_id")
    if isinstance(dev, str):
        dev = int(dev, 16)
    last = d.get("last_sync")
    if isinstance(last, str):
        try:
            last = calendar.timegm(time.strptime(last[:19], "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            last = None
    if last is not None and now - float(last) > days * 86400:
        # the detail names only the last sync: one anomaly per silence, however often cleared
        out.append(A.Anomaly("NOT_SYNCED", dev, "", "last sync %s, more than %d days ago" % (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(last))), days), []))
    clock = d.get("clock")
    if clock is not None and last is not None:  # device seconds at that sync vs the depot's
        from depot.station import local_secs_since_2000

        drift = int(clock) - local_secs_since_2000(float(last))
        if abs(drift) > A.CLOCK_TOLERANCE_S:
            out.append(A.Anomaly("CLOCK_DRIFT", dev, "", "device clock %+d s at sync %s"
                                 % (drift, time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                         time.gmtime(float(last)))), []))
    return out


def _resolve_grays(window, by_card, open_grays, day):
    """-> {(dev, seq): gray state dict} for the day's gray records and the open older ones."""
    ref, void = {}, {}
    for r in window:
        if r["ref_seq"] != RH.NONE32:
            ref[(r["_dev"], r["ref_seq"])] = r
        if r["void_seq"] not in (RH.NONE32, 0):
            void[(r["_dev"], r["void_seq"])] = r
    grays = {}
    for r in window:
        if r["status"] == "gray" and (r["_in_day"] or (r["_dev"], r["_seq"]) in open_grays):
            grays[(r["_dev"], r["_seq"])] = {
                "device_id": r["_dev"], "seq": r["_seq"], "card": r["card_serial"],
                "atc": r["atc"], "amount": r["amount"], "balance_before": r["balance_before"],
                "balance_after": r["balance_after"], "datetime": r["datetime"], "_t": r["_t"],
                "first_day": day if r["_in_day"] else open_grays[(r["_dev"], r["_seq"])][8]}
    for k, row in open_grays.items():  # open from earlier days, outside today's window
        if k not in grays:
            grays[k] = {"device_id": k[0], "seq": k[1], "card": row[2], "atc": row[3],
                        "amount": row[4], "balance_before": row[5], "balance_after": row[6],
                        "datetime": row[7], "_t": _bcd_secs(row[7]), "first_day": row[8]}
    for k, g in grays.items():
        g.update(state="open", resolution=None, matched=None, detail="")
        m = ref.get(k)
        if m is not None:
            res = "paid" if m["status"] in PAID else "void"
            g.update(state="resolved", resolution=res, matched=(m["_dev"], m["_seq"]),
                     detail="%s record REF_SEQ" % m["status"])
            continue
        m = void.get(k)
        if m is not None:
            g.update(state="resolved", resolution="void", matched=(m["_dev"], m["_seq"]),
                     detail="VOID_SEQ: the card came back with its ATC unchanged")
            continue
        # the card's next debit seen anywhere (time order, after the gray record); a later
        # gray record counts too: its ATC and balance_before are what the card showed then
        # (two torn debits in a row, each committed by the card without a final record)
        nxt = [r for r in by_card.get(g["card"], ()) if r["status"] in GRAY_OR_PAID and
               g["_t"] is not None and (r["_t"], r["_dev"], r["_seq"]) > (g["_t"], k[0], k[1])]
        # (a recovered record names a debit that happened wherever it was written: an M1
        # card's torn debit is finished by any validator, m1/FORMAT.md §4)
        same = [r for r in nxt if r["status"] in PAID and r["atc"] == g["atc"] and
                r["amount"] == g["amount"] and
                r["balance_before"] == g["balance_before"] and
                (r["_dev"] == k[0] or r["status"] == "recovered")]
        if same:  # the same transaction's final record without REF_SEQ
            m = same[0]
            g.update(state="resolved", resolution="paid", matched=(m["_dev"], m["_seq"]),
                     detail="final record on the same card and ATC")
        elif nxt:
            m = nxt[0]
            d = (m["atc"] - g["atc"]) % A.ATC_MOD
            if d == 0 and m["balance_before"] == g["balance_before"]:
                g.update(state="resolved", resolution="void", matched=(m["_dev"], m["_seq"]),
                         detail="next debit has the same ATC and balance: no debit")
            elif d == 1 and m["balance_before"] == g["balance_after"]:
                g.update(state="resolved", resolution="debited", matched=(m["_dev"], m["_seq"]),
                         detail="next debit has ATC+1 and balance_before = gray balance_after:"
                         " the card paid, no TAC (dispute file)")
            else:
                g["detail"] = "next debit ATC %d balance_before %d: not decidable" % (
                    m["atc"], m["balance_before"])
        else:
            g["detail"] = "card not seen since"
    return grays


def _verdicts(day_recs, corrupt, grays, city, day):
    """(dev, seq) -> (verdict, reason, destination, row fields) for the day's records."""
    out = {}
    for r in day_recs:
        k = (r["_dev"], r["_seq"])
        dest = destination(r, city)
        if r["status"] in PAID:
            if r["_tac_ok"] is True:
                v = ("cleared", None, dest)
                r["_file"] = export_name(day, dest, r["issuer_id"])
            else:
                v = ("error", r["_tac_why"], dest)
        elif r["status"] == "gray":
            g = grays.get(k, {})
            v = ("gray", g.get("resolution") or "open", dest)
        else:
            v = ("no_debit", r["status"], dest)
        out[k] = v + (r,)
    for dev, seq, _raw, why in corrupt:
        out[(dev, seq)] = ("corrupt", why, None, None)
    return out


def _store(s, day, found, results, grays):
    """Write clearing_results, the new anomalies and gray states; -> new anomaly count."""
    created = _now_iso()
    with s.transaction():
        have = {r[0] for r in _tuples(s.query("SELECT akey FROM anomalies"))}
        top = _tuples(s.query("SELECT MAX(id) FROM anomalies"))[0][0] or 0
        rows, seen = [], set()
        for a in found:
            k = A.key_of(a)
            if k in have or k in seen:
                continue
            seen.add(k)
            top += 1
            rows.append((top, k, A.kind_of(a.reason), a.reason, a.device_id, a.card, a.detail,
                         json.dumps([list(x) for x in a.records]), day, created, "open"))
        s.executemany("INSERT INTO anomalies (id, akey, kind, reason, device_id, card, detail, "
                      "records, cleared_day, created, status) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                      rows)
        s.execute("DELETE FROM clearing_results WHERE cleared_day = ?", (day,))
        res = []
        for (dev, seq), (verdict, reason, dest, r) in results.items():
            if r is None:
                res.append((dev, seq, day, None, None, None, None, None, verdict, reason, None,
                            None))
            else:
                tac = r.get("_tac_ok")
                res.append((dev, seq, day, r["status"], r["card_serial"], r["issuer_id"],
                            r["amount"], None if tac is None else int(tac), verdict, reason,
                            dest, r.get("_file")))
        s.executemany("INSERT INTO clearing_results (device_id, seq, cleared_day, status, card, "
                      "issuer, amount, tac_ok, verdict, reason, destination, export_file) "
                      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", res)
        s.execute("DELETE FROM gray_records WHERE first_day = ?", (day,))
        s.executemany("DELETE FROM gray_records WHERE device_id = ? AND seq = ?",
                      [k for k, g in grays.items() if g["first_day"] != day])
        s.executemany(
            "INSERT INTO gray_records (device_id, seq, card, atc, amount, balance_before, "
            "balance_after, datetime, state, resolution, matched_device, matched_seq, detail, "
            "first_day, resolved_day) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(g["device_id"], g["seq"], g["card"], g["atc"], g["amount"], g["balance_before"],
              g["balance_after"], g["datetime"], g["state"], g["resolution"],
              g["matched"][0] if g["matched"] else None,
              g["matched"][1] if g["matched"] else None, g["detail"], g["first_day"],
              day if g["state"] == "resolved" else None) for g in grays.values()])
    return len(rows)


def _day_anomalies(s, day, found):
    """Every stored anomaly behind this day's findings (new or from an earlier run)."""
    keys = {A.key_of(a) for a in found}
    rows = _tuples(s.query("SELECT id, akey, kind, reason, device_id, card, detail, records, "
                           "status FROM anomalies"))
    return [r for r in rows if r[1] in keys]


# -- export files ---------------------------------------------------------------------------
EXPORT_COLUMNS = ("depot_device_id", "depot_seq", "tac_verified") + tuple(RH.CSV_COLUMNS)
ERROR_COLUMNS = ("anomaly_id", "kind", "reason", "depot_device_id", "depot_seq", "card",
                 "detail", "status", "record")
GRAY_COLUMNS = ("depot_device_id", "depot_seq", "card", "atc", "amount", "balance_before",
                "balance_after", "datetime", "state", "resolution", "matched_device",
                "matched_seq", "detail", "first_day")


_json_str = json.encoder.encode_basestring_ascii


class _Sink:
    """A file written through a small text buffer, hashed as it goes (bounded memory)."""

    def __init__(self, path):
        self.path = path
        self.f = open(path + ".tmp", "wb")
        self.h = hashlib.sha256()
        self.buf = io.StringIO()
        self.n = 0

    def write(self, text):
        self.buf.write(text)
        self.n += 1
        if self.n >= 2000:
            self.flush()

    def flush(self):
        b = self.buf.getvalue().encode()
        self.h.update(b)
        self.f.write(b)
        self.buf.seek(0)
        self.buf.truncate()
        self.n = 0

    def finish(self, tail):
        self.flush()
        self.f.write(tail.encode())
        self.f.close()
        os.replace(self.path + ".tmp", self.path)


class _Out:
    """One export file pair (CSV + JSONL) with a control record over everything before it."""

    def __init__(self, base, columns, header):
        self.base, self.columns = base, columns
        self.csv = _Sink(base + ".csv")
        self.jsonl = _Sink(base + ".jsonl")
        self.w = csv.writer(self.csv, lineterminator="\n")
        self.w.writerow(columns)
        self.jsonl.write(json.dumps({"header": header}, sort_keys=True) + "\n")
        self.count = self.amount = 0
        # one JSON object a line, keys in column order: a fixed template, values encoded
        # by the json module's own string encoder (C)
        self.tmpl = "{" + ",".join('"%s":%%s' % c for c in columns) + "}\n"

    def add(self, row, amount=0):
        self.w.writerow(row)
        enc = _json_str
        self.jsonl.write(self.tmpl % tuple(
            enc(v) if type(v) is str else "null" if v is None else str(int(v)) for v in row))
        self.count += 1
        self.amount += amount

    def close(self):
        paths = {}
        for ext, sink in (("csv", self.csv), ("jsonl", self.jsonl)):
            sink.flush()
            ctl = {"count": self.count, "amount_fen": self.amount,
                   "sha256": sink.h.hexdigest()}
            sink.finish("CONTROL,%(count)d,%(amount_fen)d,%(sha256)s\n" % ctl if ext == "csv"
                        else json.dumps({"control": ctl}, sort_keys=True) + "\n")
            paths[ext] = sink.path
        return paths


def export_name(day, dest, issuer_id):
    """File name (without .csv/.jsonl) of one destination's and issuer's export."""
    return "clearing-%s-%s-%s" % (day, dest, issuer_id)


def write_exports(out_dir, day, city, operator, day_recs, results, day_anoms, grays, corrupt):
    os.makedirs(out_dir, exist_ok=True)
    hdr = {"format": "ykt-clearing", "version": FORMAT_VERSION, "business_day": day,
           "city": city, "operator": operator, "day_cutoff_hour": DAY_CUTOFF_H}
    outs, files = {}, {"exports": []}
    settle = collections.defaultdict(lambda: {"count": 0, "amount_fen": 0})
    for (dev, seq), (verdict, _reason, dest, r) in sorted(results.items()):
        if verdict != "cleared":
            continue
        key = (dest, r["issuer_id"])
        o = outs.get(key)
        if o is None:
            base = os.path.join(out_dir, export_name(day, dest, r["issuer_id"]))
            o = outs[key] = _Out(base, EXPORT_COLUMNS, dict(hdr, destination=dest,
                                                              issuer=r["issuer_id"]))
        full = decode(r["_raw"])
        o.add(["%08X" % dev, seq, 1] + list(map(full.get, RH.CSV_COLUMNS)), r["amount"])
        st = settle[key]
        st["count"] += 1
        st["amount_fen"] += r["amount"]
    for (dest, iss), o in sorted(outs.items()):
        p = o.close()
        files["exports"].append({"destination": dest, "issuer": iss, "count": o.count,
                                 "amount_fen": o.amount, **p})
    # error file: every anomaly behind the day, one row per record it names
    raw = {(r["_dev"], r["_seq"]): r for r in day_recs}
    raw.update({(d, q): {"status": "corrupt", "_raw": b} for d, q, b, _ in corrupt})
    err = _Out(os.path.join(out_dir, "errors-%s" % day), ERROR_COLUMNS, dict(hdr, file="errors"))
    for aid, _k, kind, reason, dev, card, detail, recs, _st in sorted(day_anoms):
        recs = json.loads(recs or "[]") or [[dev, None]]
        for d, q in recs:
            r = raw.get((d, q), {})
            amt = r.get("amount", 0) if kind == "tac" else 0
            err.add([aid, kind, reason, "%08X" % d if d is not None else "", q, card, detail,
                     r.get("status", ""), r["_raw"].hex() if r.get("_raw") else ""], amt)
    files["errors"] = err.close()
    gray = _Out(os.path.join(out_dir, "gray-%s" % day), GRAY_COLUMNS, dict(hdr, file="gray"))
    disputed = 0
    for (dev, seq), g in sorted(grays.items()):
        m = g["matched"] or (None, None)
        gray.add(["%08X" % dev, seq, g["card"], g["atc"], g["amount"], g["balance_before"],
                  g["balance_after"], g["datetime"], g["state"], g["resolution"] or "",
                  "%08X" % m[0] if m[0] is not None else "", m[1] if m[1] is not None else "",
                  g["detail"], g["first_day"]], g["amount"] if g["resolution"] == "debited"
                 else 0)
        if g["resolution"] == "debited":
            disputed += g["amount"]
    files["gray"] = gray.close()
    # settlement: who owes the operator what for the day
    lines = []
    for (dest, iss), st in sorted(settle.items()):
        lines.append({"payer_issuer": iss, "via": ("national-clearing-centre" if dest ==
                                                   NATIONAL else "city-clearing"),
                      "payee": operator, "destination": dest, **st})
    by_dest = collections.defaultdict(int)
    for ln in lines:
        by_dest[ln["destination"]] += ln["amount_fen"]
    doc = {"header": dict(hdr, file="settlement"), "lines": lines,
           "totals": {"owed_to_operator_fen": sum(by_dest.values()),
                      "by_destination_fen": dict(by_dest),
                      "disputed_gray_debited_fen": disputed,
                      "error_records": sum(1 for v in results.values()
                                           if v[0] in ("error", "corrupt"))}}
    body = json.dumps(doc, indent=1, sort_keys=True)
    doc["control"] = {"sha256": hashlib.sha256(body.encode()).hexdigest(),
                      "count": len(lines), "amount_fen": doc["totals"]["owed_to_operator_fen"]}
    p = os.path.join(out_dir, "settlement-%s.json" % day)
    with open(p, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
    files["settlement"] = p
    return files


def read_control(path):
    """Check an export file's control record; -> control dict (ValueError when it fails)."""
    with open(path, "rb") as f:
        data = f.read()
    body, _, tail = data.rstrip(b"\n").rpartition(b"\n")
    body += b"\n"
    if path.endswith(".csv"):
        tag, count, amount, sha = tail.decode().split(",")
        if tag != "CONTROL":
            raise ValueError("%s: no control record" % path)
        ctl = {"count": int(count), "amount_fen": int(amount), "sha256": sha}
    else:
        ctl = json.loads(tail)["control"]
    if hashlib.sha256(body).hexdigest() != ctl["sha256"]:
        raise ValueError("%s: control hash does not match" % path)
    return ctl


def list_anomalies(db, kinds=None, status=None, day=None):
    s = ensure_schema(db)
    q = ("SELECT id, kind, reason, device_id, card, detail, records, cleared_day, created, "
         "status FROM anomalies")
    cond, args = [], []
    if status:
        cond.append("status = ?")
        args.append(status)
    if day:
        cond.append("cleared_day = ?")
        args.append(day)
    if cond:
        q += " WHERE " + " AND ".join(cond)
    cols = ("id", "kind", "reason", "device_id", "card", "detail", "records", "cleared_day",
            "created", "status")
    out = [dict(zip(cols, r, strict=True)) for r in _tuples(s.query(q + " ORDER BY id", args))]
    if kinds:
        out = [a for a in out if a["kind"] in kinds or a["reason"] in kinds]
    for a in out:
        a["records"] = json.loads(a["records"] or "[]")
    return out


def business_days(db):
    """The business days (YYYY-MM-DD) that the stored, readable records fall in."""
    s = store(db)
    days = set()
    cut = _dt.timedelta(hours=DAY_CUTOFF_H)
    for _dev, _seq, raw, _rec in iter_raw(s):
        if len(raw) == RH.REC_SIZE and RH.crc_ok(raw):
            h = raw[RH.O_DATETIME:RH.O_DATETIME + 7].hex()
            try:
                t = _dt.datetime.strptime(h, "%Y%m%d%H%M%S")
            except ValueError:
                continue
            days.add((t - cut).strftime("%Y-%m-%d"))
    return sorted(days)


def clear_all(db, keyservice, out_dir, **kw):
    """Clear every business day present (what `make sim` wants); -> {day: summary}."""
    return {d: clear_day(db, d, keyservice, out_dir, **kw) for d in business_days(db)}


def open_database(path_or_url):
    """depot.db.open_db (a SQLite path or a postgresql:// URL)."""
    from depot import db as dbmod

    return dbmod.open_db(path_or_url)


def _make_encoder():
    fields = [(c, o, n, k, codes) for c, o, n, k, codes in RH.RECORD_FIELDS
              if c and k != "none"]

    def encode(rec, seq=None):
        """A 128-byte record image from a decode()-shaped dict (the inverse of decode(),
        for tests and benchmarks), stamped like RecordLog.append: commit word, version,
        length, seq, CRC. Fields not given keep new_image() values."""
        b = RH.new_image()
        for col, off, size, kind, codes in fields:
            if col not in rec:
                continue
            v = rec[col]
            if kind in ("u8", "x8", "enum8", "flags8"):
                if kind == "x8" and isinstance(v, str):
                    v = int(v, 16)
                elif kind == "enum8" and isinstance(v, str):
                    v = dict(codes)[v]
                b[off] = v
            elif kind in ("u16", "u32"):
                b[off:off + size] = int(v).to_bytes(size, "big")
            else:
                raw = bytes.fromhex(v) if isinstance(v, str) else bytes(v)
                if len(raw) != size:
                    raise ValueError("%s: %d bytes, not %d" % (col, len(raw), size))
                b[off:off + size] = raw
        b[0:4] = RH.REC_COMMIT
        b[RH.O_VERSION] = RH.REC_VERSION
        b[RH.O_LENGTH:RH.O_LENGTH + 2] = RH.REC_SIZE.to_bytes(2, "big")
        if seq is not None:
            b[RH.O_SEQ:RH.O_SEQ + 4] = int(seq).to_bytes(4, "big")
        b[RH.O_CRC:RH.O_CRC + 4] = binascii.crc32(bytes(b[4:RH.O_CRC])).to_bytes(4, "big")
        return bytes(b)

    return encode


encode = _make_encoder()
